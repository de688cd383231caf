"""Small, valid source files in the six evaluated languages, and ways to break them (shared by the tests)."""

GOOD = {
    "python": ("py", '''def mean(values):
    """Average of a list of numbers."""
    total = 0
    for value in values:
        total += value
    return total / len(values)


print(mean([1, 2, 3]))
'''),
    "javascript": ("js", '''function mean(values) {
  // Average of an array of numbers.
  let total = 0;
  for (const value of values) {
    total += value;
  }
  return total / values.length;
}
console.log(mean([1, 2, 3]));
'''),
    "java": ("java", '''public class Stats {
    // Average of an array of numbers.
    public static double mean(int[] values) {
        int total = 0;
        for (int value : values) {
            total += value;
        }
        return (double) total / values.length;
    }
}
'''),
    "go": ("go", '''package stats

// Mean returns the average of a slice of numbers.
func Mean(values []int) float64 {
	total := 0
	for _, value := range values {
		total += value
	}
	return float64(total) / float64(len(values))
}
'''),
    "cpp": ("cpp", '''#include <vector>

// Average of a vector of numbers.
double mean(const std::vector<int>& values) {
    int total = 0;
    for (int value : values) {
        total += value;
    }
    return static_cast<double>(total) / values.size();
}
'''),
    "rust": ("rs", '''/// Average of a slice of numbers.
fn mean(values: &[i32]) -> f64 {
    let mut total = 0;
    for value in values {
        total += value;
    }
    total as f64 / values.len() as f64
}
'''),
}

# A syntax error in each language: an unclosed block / broken expression.
BROKEN = {
    "python": "def mean(values:\n    return sum(values) /\n",
    "javascript": "function mean(values) {\n  let total = ;\n  return total / values.length;\n",
    "java": "public class Stats {\n    public static double mean(int[] values {\n        return 0;\n    }\n",
    "go": "package stats\n\nfunc Mean(values []int) float64 {\n\ttotal := \n\treturn total\n",
    "cpp": "double mean(const std::vector<int>& values {\n    int total = ;\n    return total\n",
    "rust": "fn mean(values: &[i32]) -> f64 {\n    let mut total = ;\n    total as f64 /\n",
}

LANGUAGES = tuple(GOOD)


def comment(language: str, text: str) -> str:
    return f"# {text}" if language == "python" else f"// {text}"
