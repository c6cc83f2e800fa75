"""`guidang web`: the archive bureau's read-only console (FastAPI + Jinja2, server-rendered).

app.py builds the application; auth.py and guard.py hold sessions, CSRF and the page -> roles
matrix; signin.py, pages.py and downloads.py the routes; page_queries.py the ledger questions the pages
ask; package_view.py reads a stored package for its page. Nothing here writes the ledger or the
repository.
"""
