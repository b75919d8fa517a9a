from shopstream_cli.main import main

main()
