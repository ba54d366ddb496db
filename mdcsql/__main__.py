from mdcsql.cli import main

main()
