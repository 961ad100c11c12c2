//! The terminal operator: a technician at a console.
