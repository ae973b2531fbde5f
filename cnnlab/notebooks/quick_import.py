"""Reading notebooks without a 3-second import.

nbformat validates with jsonschema, and jsonschema imports ``rfc3987_syntax`` for its "iri"
string format wherever that package is installed (Jupyter's ``jupyter-events`` pulls it in).
That import builds a parser: about 3 s of CPU in every process that reads a notebook, which in
a grading run is every submission's executor. Notebook schemas use no string formats, so the
processes that read and run notebooks tell Python the package is absent, and jsonschema goes
without that one format checker. Importing this module does it; import it before nbformat.
"""

from __future__ import annotations

import sys

if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # None: "import rfc3987_syntax" raises ImportError
