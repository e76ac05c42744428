from pmtoolkit.cli.main import main

main()
