from dinstyle.cli import main

main()
