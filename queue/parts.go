package queue

import "github.com/simgate/simgate"

// countParts returns how many SMS text takes (simgate.CountParts, which the
// API's budgets count with too).
func countParts(text string) int { return simgate.CountParts(text) }
