"""The admin-editable templates: files, the sandbox, validation, reload, sample data."""
