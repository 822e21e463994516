"""``python -m optrun``: the same CLI as the ``optrun`` console script."""

from optrun_cli.entry import main

if __name__ == "__main__":
    main()
