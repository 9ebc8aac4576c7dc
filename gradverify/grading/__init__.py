"""Grading untrusted student code: sandboxed workers, assignment profiles, rubric, batch runs.

Modules, from the bottom up:

- the sandbox, by layer: ``limits`` (the numbers), ``isolation`` (which layers this machine
  allows), ``files`` (the sandbox's root and the copy of the submission), ``process`` (the worker
  process and its pipes), ``frames`` (the wire format) and ``protocol`` (the checks on every
  reply), ``sandbox`` (the ``Sandbox`` that puts them together); ``_worker`` runs inside it;
- inside the sandbox, how a submission becomes a module: ``loader`` (a file, a folder's entry found
  by reading), ``notebook`` (.ipynb code cells), ``python2`` (print statements rewritten, other
  Python 2 syntax named); ``packages`` resolves the allowed imports the sandbox exposes;
- grading one submission: ``runner`` (calls through the profile), ``detect`` (call form and
  conventions, per submission), ``checks`` (one function per rubric item; ``robustness`` for the
  advisory ``classes_absent``), ``grader`` (``grade_submission`` and the ``Grade`` record),
  ``reproducer`` (``reproduce.py``, the graded call made again);
- many submissions: ``batch`` (discovery, parallel runs, resume) and ``feedback`` (what students
  and instructors read).
"""
