"""``python -m unlearnbench``: the ``unlearnbench`` command (``unlearnbench.command``)."""

from unlearnbench.command import main

if __name__ == "__main__":
    main()
