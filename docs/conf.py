"""Sphinx configuration of the dav2_ros reference (`make docs`; MyST Markdown pages).

No intersphinx and no remote images: the build needs no network. The generated parts
(docs/_generated: benchmark tables, parameter reference) are written by `make docs`
before Sphinx runs and are pulled into the pages with MyST's include directive.
"""

project = "dav2_ros"
author = "dav2_ros developers"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# _generated holds include fragments, not pages; the scripts beside conf.py are tools.
exclude_patterns = ["_generated", "_build", "*.py"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links resolve to headings
myst_enable_extensions = ["colon_fence"]
suppress_warnings: list[str] = []
html_theme = "alabaster"
html_title = "dav2_ros"
html_static_path: list[str] = []
