"""Grading untrusted student code: sandboxed workers, assignment profiles, rubric, batch runs.

Modules, from the bottom up:

- the sandbox, by layer: ``limits`` (the numbers), ``isolation`` (which layers this machine
  allows, and a uid of its own per sandbox), ``seccomp`` (the system-call filter), ``files`` (one
  snapshot of the submission, its fingerprint, safe removal), ``process`` (the worker process,
  its pipes and its CPU time), ``frames`` (the wire format) and ``protocol`` (sealed arguments,
  the checks on every reply), ``sandbox`` (the ``Sandbox`` that puts them together);
  ``_worker`` and ``_cage`` run inside it;
- inside the sandbox, how a submission becomes a module: ``loader`` (a file, a folder's entry found
  by reading), ``notebook`` (.ipynb code cells), ``python2`` (print statements rewritten, other
  Python 2 syntax named); ``packages`` resolves the allowed imports the sandbox exposes;
- grading one submission: ``cases`` (the public, hidden and generated cases from a secret
  seed), ``runner`` (calls through the profile), ``detect`` (call form and conventions, per
  submission), ``checks`` (one function per rubric item; ``robustness`` for the advisory
  ``classes_absent``), ``timing`` (a numerical gradient told by its cost), ``grader``
  (``grade_submission`` and the ``Grade`` record), ``reproducer`` (``reproduce.py``, the graded
  call made again);
- a ``layers.py`` of CS231n's forward/backward pairs (``--assignment layers-api``), one rubric item
  per layer: ``layer_profile`` (items, points, names), ``layer_cases`` (fixed and generated
  cases), ``layer_calls`` (the pair run in the worker, judged by ``gradverify.layers``),
  ``layer_grader`` (the ``Grade``);
- many submissions: ``batch`` (discovery, safe names, parallel runs, resume, the lock),
  ``text`` (student text made valid and escaped) and ``feedback`` (what students and
  instructors read); ``remote`` grades on a cluster.
"""
