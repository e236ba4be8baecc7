"""`python -m aiconsole`: the same CLI as the `aiconsole` script."""

from aiconsole.cli.main import main

if __name__ == "__main__":
    main()
