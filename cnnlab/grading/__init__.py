"""The autograder: untrusted notebooks run in a sandbox; trusted code grades plain data.

Two processes, and data only between them:

1. **Untrusted side** (:mod:`~cnnlab.grading.sandbox`, :mod:`~cnnlab.grading.jail`,
   :mod:`~cnnlab.grading.runner`): the notebook that the grader assembled
   (:mod:`~cnnlab.grading.assemble`) runs in a fresh kernel, in a fresh directory, under
   resource limits, without network, as an unprivileged user, in its own PID namespace.
   Export cells written by the instructors save the graded values as JSON, ``.npy`` files
   and model configs with weight arrays (:mod:`~cnnlab.grading.export`).
2. **Trusted side** (:mod:`~cnnlab.grading.trusted`): a separate process that never
   imports or runs anything the student wrote reads those files with size caps and
   ``allow_pickle=False``, rebuilds models through an allow-list of built-in Keras layers
   (:mod:`~cnnlab.grading.safe_io`), and runs the hidden tests, which live under
   ``solutions/hidden/``.

:mod:`~cnnlab.grading.batch` grades many submissions, :mod:`~cnnlab.grading.results`
writes the per-submission JSON, the Gradescope ``results.json`` and the gradebook.
"""
