"""Same as ``unlearnbench-compare``; for use from a checkout without installing."""

from unlearnbench.compare import main

if __name__ == "__main__":
    main()
