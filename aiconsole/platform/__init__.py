"""Platform: settings, errors, money, identity and permissions, audit, cache, health, migrations, the database."""
