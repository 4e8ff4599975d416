"""The CSV tables the stages hand to each other: columns, checked reading, the selected row."""
