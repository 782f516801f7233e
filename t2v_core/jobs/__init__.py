"""The workflow's heavy jobs, apart from the declarations they run: the fine-tuning of one
(fine-tuned model, motion) (:mod:`.finetune`) and the sampling of one (method, motion)
(:mod:`.sample`). A method or a fine-tuning declares what is its own (``Method.load`` and
``sample``, ``Training.build`` and ``save``); the jobs do what every one of them shares."""
