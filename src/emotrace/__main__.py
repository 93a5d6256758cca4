from emotrace.cli import main

main()
