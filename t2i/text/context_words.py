"""Words people put around the scene they ask for, which leave the picture alone.

"for a school worksheet, ...", "..., it's for my slides", "i'm a teacher. ...": the reasons,
audiences and manners that come with a request. A model trained only on bare scenes reads them as
part of the scene (a long prompt's text embedding drifts from its scene's; docs/results/unclip.md,
session 46), so t2i.text.shapes_wording says a few wordings of every caption among them.

Written for training, by hand, by someone who saw none of the evaluation prompts. Each is true
of any picture: none names a colour, size, number, shape, place or anything else to draw
(tests/test_shapes_wording.py checks the words), and none is longer than eight words.
"""

# said before the scene, leading into it: "for my slides, a red circle", "hey, draw a red circle"
BEFORE = (
    "for a school worksheet,", "for my daughter's homework,", "hey,", "quick request:", "if possible,", "hi there,", "hello,",
    "ok so", "for my slides,", "for a kids' app,", "for a presentation tomorrow,", "for testing purposes,", "test prompt:",
    "sanity check:", "for my lesson plan,", "for the class newsletter,", "if you don't mind,", "when you have a moment,",
    "sorry to bother you, but", "just curious,", "random request,", "for fun,", "for my portfolio mockup,", "um,", "so basically,",
    "for a unit test,", "as a warm-up,", "for a preschool activity,", "for my students,", "for a quiz question,", "dear model,",
    "good morning,", "alright,", "okay,", "for a flashcard,", "for my niece,", "please,", "kindly,", "no rush, but", "new prompt:",
    "here's what i need:", "here is my request:", "for a memory game,", "for an art class,", "for a design mockup,",
    "for our team wiki,", "in a flat style,", "keeping it simple,", "nothing fancy,", "for a placeholder image,",
    "just for practice,", "for my blog post,", "for a birthday card,", "for my grandma,", "for a coding demo,",
    "for a debugging session,", "i know it's weird, but", "this might sound silly, but", "for a math worksheet,",
    "for a geometry lesson,", "for an esl class,", "for a toddler's puzzle,", "for the kids,", "in a minimalist style,", "prompt:",
    "request:", "yo,", "greetings,", "for a wireframe,", "as a quick example,", "for my thesis,", "for a bedtime story,",
    "for an experiment,", "pretty please,", "another request:", "for a children's book,", "hello sir, please", "dear ai,",
    "for my english lesson,", "if it's not too much trouble,",
)
# said after it, with their own leading comma or space: "a red circle, it's for my slides"
AFTER = (
    ", it's for my slides", ", thanks", ", thank you", " please", ", if you please", ", if you can", ", thanks in advance",
    ", it's for a worksheet", ", for my kid's homework", ", nothing fancy", ", keep it simple", ", flat style is fine", ", no rush",
    ", whenever you get a chance", ", it's for a quiz", ", for a lesson tomorrow", ", just testing", ", this is a test",
    ", for a unit test", ", cheers", ", ty", ", thx", ", much appreciated", ", appreciate it", ", for my students",
    ", for a kids' app", ", if that's okay", ", if that's not too hard", ", as simple as you like", ", minimal style please",
    ", clean and flat", ", for a presentation", ", for a flashcard", ", for my portfolio", ", for a coding demo", ", it's for a game",
    " for my class", " for my niece", " for the newsletter", " for a poster", ", my son asked for it", ", my daughter loves these",
    ", the kids will love it", ", don't overthink it", ", whatever looks good", ", that's all", ", that's it", ", that's all i need",
    ", please and thank you", ", sorry for the trouble", ", if possible", ", pretty please", ", lol", ", haha", ", for science",
    ", for a blog post", ", for a wireframe", ", just for fun", ", for practice", ", for a birthday card", ", for our team wiki",
    ", it's for a geometry lesson", " for testing", ", thank you so much", ", kindly", ", for my homework", ", for an esl worksheet",
    ", to check the model", ", for a dataset sanity check", ", it's for a toddler", " thank you very much sir", ", ok",
)
# a sentence of their own, before or after the scene: "i'm a teacher. a red circle"
SENTENCES = (
    "i'm making flashcards", "this is for a worksheet", "it's for my slides", "thanks in advance", "thank you", "keep it simple",
    "nothing fancy please", "flat style is fine", "i'm a teacher", "i teach kindergarten", "my kid loves these",
    "this is just a test", "i'm testing the model", "it's for a presentation", "no rush", "hope that makes sense",
    "sorry if this is a weird request", "i'm making a memory game", "we're building a kids' app", "i need it for a quiz",
    "it's for a geometry lesson", "this is for my portfolio", "i'm prototyping an app", "i'm designing a board game",
    "it's for a school project", "my students are in preschool", "it's homework for my son", "i'm learning english",
    "sorry, my english is not good", "please help me", "i appreciate it", "much appreciated", "you're the best",
    "let's see what you've got", "this is a sanity check", "just checking the pipeline", "running a quick regression test",
    "it's for a blog post", "i like minimal art", "clean and flat works", "keep it clean", "minimal is good", "don't overthink it",
    "i'm putting together a lesson", "it's for a children's book", "my grandma asked for this",
    "we're doing a speech therapy exercise", "it's for a bedtime story", "it's for a birthday card", "that's all i need", "that's it",
    "hello", "hi", "good morning", "hope you're well", "hope you're having a good day", "cheers", "it's for our team wiki",
    "it's a placeholder for now", "i'll use it in a mockup", "i'm teaching my toddler", "this is for an esl class", "just for fun",
    "it's for practice", "i'm curious how it turns out", "let's try this", "try your best", "whatever you come up with is fine",
    "whatever clean style works", "it's for a math worksheet", "i'm a designer", "i'm a programmer testing this", "i'm in art class",
    "my teacher wants this", "the kids will love it", "lol",
)
# requests leading into the scene, beside t2i.text.shapes_wording.PREFIXES' common ones: "could you whip up a red circle"
REQUESTS = (
    "could you whip up", "i need", "mind drawing", "would you mind doing", "can i get", "could i get", "can i have", "may i have",
    "i'm looking for", "i'm after", "looking for", "how about", "let me see", "gimme", "i'd love", "would love", "could you do",
    "can you do", "could you knock out", "could you throw together", "can you cook up", "could you produce", "please produce",
    "kindly prepare", "please prepare", "could you mock up", "can you doodle", "doodle me", "try doing", "have a go at",
    "i'm hoping for", "we need", "could you come up with", "please output", "can we get", "could we have", "what i need is",
    "please visualize", "whip me up", "i wanna see",
)
