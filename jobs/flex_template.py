"""Entry point of the Flex Template (FLEX_TEMPLATE_PYTHON_PY_FILE); the launcher is jobs/template.py."""

import sys

from jobs.template import main

if __name__ == "__main__":
    sys.exit(main())
