"""Bookings: the service the API writes through (`service.Bookings`), the in-memory
index of bookings holding rooms (`index.BookingIndex`) and their metrics."""
