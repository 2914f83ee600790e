"""``python -m trackfusion.data.synthetic``."""
from trackfusion.data.synthetic.command import main

raise SystemExit(main())
