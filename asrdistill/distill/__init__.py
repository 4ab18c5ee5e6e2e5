"""Knowledge distillation of an ensemble of DNN acoustic models into one model (Hinton et al. 2015, Sec. 4).

Modules:
  config   -- the options without torch (``DistillConfig``, ``TeacherCacheConfig``)
  loss     -- soft targets at a temperature, hard targets, logit matching
  teacher  -- the teacher on the fly or from the cache (``OnTheFlyTeacher``, ``CachedTeacher``,
              ``make_teacher_cache``)
  cache    -- the teacher cache's files: every member's logits, built in one pass, checked against the exact teacher
  priors   -- the student's priors (full-data alignment counts or the mean posterior)
  train    -- training a student (``train_student``)
"""
