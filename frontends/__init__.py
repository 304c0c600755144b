"""What a person looks at: the ``spinesim`` command (:mod:`.cli`, :mod:`.commands`), the web app
(:mod:`.web`), the attempt store (:mod:`.store`), the HTML report (:mod:`.report`), the patient's
explanation pages (:mod:`.explain`) and the pictures they share (:mod:`.pictures`).

Front-ends read and write the engine's objects; nothing in the engine or in scoring imports them."""
