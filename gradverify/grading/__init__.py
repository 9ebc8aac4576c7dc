"""Grading untrusted student code: sandboxed workers, assignment profiles, rubric, batch runs."""
