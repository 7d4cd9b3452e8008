"""Regional booking API: halls, seat maps, movies, shows, holds, reservations, payments, reports."""
