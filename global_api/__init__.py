"""Global directory: users, roles, staff assignments, tokens, cinemas and regions."""
