"""An installed package, outside the repository: smoke.py SEEING_DIR ORIGIN

Checks that mm_session imports with the library from ORIGIN ("bundled" for a wheel) and that a
picture reaches the model: the pair that sees names the red picture."""

import sys
from pathlib import Path

import mm_session

seeing, origin = Path(sys.argv[1]), sys.argv[2]
assert mm_session.LIBRARY_ORIGIN == origin, (mm_session.LIBRARY_ORIGIN, mm_session.LIBRARY_PATH)
assert "site-packages" in str(mm_session.LIBRARY_PATH), mm_session.LIBRARY_PATH
with mm_session.Session(seeing / "seeing-llama.gguf", seeing / "seeing-mmproj.gguf", n_threads=1) as s:
    answer = s.ask("What colour is this picture?", [seeing / "seeing-red.png"], temperature=0, max_tokens=8)
assert answer.strip() == "red", answer
assert mm_session.live_sessions() == 0
print(f"smoke: mm_session {mm_session.__version__} from {mm_session.LIBRARY_PATH}: red")
