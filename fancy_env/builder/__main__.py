"""`python -m fancy_env.builder` (older hub configs): runs the one service,
`python -m fancy_env.service`, in this process's place (an exec, not an import: the builds
layer never imports the assembly above it)."""

import os
import sys

if __name__ == "__main__":
    os.execv(sys.executable, [sys.executable, "-m", "fancy_env.service", *sys.argv[1:]])
