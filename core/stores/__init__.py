"""What people leave behind in SQLite: Chat feedback and citation reviews. One store of
each per process; imports nothing from ``core/`` beyond errors and files."""
