"""SLA: business time, policies, clocks kept in the database, and the sweep."""
