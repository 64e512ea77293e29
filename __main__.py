from teachloop.cli import main

main()
