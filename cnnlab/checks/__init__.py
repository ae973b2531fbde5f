"""Public checks that students run under each question: ``cnnlab.checks.lab02.q1(build_mlp)``.

Each check prints a pass, or a hint about what is wrong (a shape, a count, a layer type),
and returns True or False. A check never prints the answer itself. The hidden tests that
grade a submission are not here: they belong to the instructors (see the grader).
"""
