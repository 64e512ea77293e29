from teachloop.cli.app import main

main()
