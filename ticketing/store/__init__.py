"""Storage: engines and transactions, the tables, the audit trail, the migrations."""
