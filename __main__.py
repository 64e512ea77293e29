from teachloop.cli.main import main

main()
