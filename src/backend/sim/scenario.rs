//! Scenario files: a simulated array, what goes wrong, and what must happen.
