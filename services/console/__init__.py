"""The staff console: pages over the Tag API, user accounts, sessions, languages, saved views."""
