"""The marketer's console: login, sessions, roles, pages, and the place its JSON API mounts."""
