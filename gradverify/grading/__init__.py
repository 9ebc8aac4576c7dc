"""Grading untrusted student code: sandboxed workers, assignment profiles, rubric, batch runs.

Modules, from the bottom up:

- the sandbox, by layer: ``limits`` (the numbers), ``isolation`` (which layers this machine
  allows), ``files`` (the sandbox's root and the copy of the submission), ``process`` (the worker
  process and its pipes), ``frames`` (the wire format) and ``protocol`` (the checks on every
  reply), ``sandbox`` (the ``Sandbox`` that puts them together); ``_worker`` runs inside it;
- grading one submission: ``runner`` (calls through the profile), ``checks`` (one function per
  rubric item), ``grader`` (``grade_submission`` and the ``Grade`` record);
- many submissions: ``batch`` (discovery, parallel runs, resume) and ``feedback`` (what students
  and instructors read).
"""
