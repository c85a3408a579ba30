from zkdrift.cli import main

main()
