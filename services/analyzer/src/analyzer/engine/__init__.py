"""The movement-analysis engine: streaming decode, motion features, score and report.

See services/analyzer/ENGINE.md for the features, the dancer-separation assumption and
the score formula.
"""

from analyzer.engine.analysis import analyze_video
from analyzer.engine.errors import VideoDecodeError
from analyzer.engine.result import AnalysisResult

__all__ = ["AnalysisResult", "VideoDecodeError", "analyze_video"]
