from kpctl.cli.main import main

main()
