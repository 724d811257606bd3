package onboard

import (
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/signup"
)

// group splits requests into sets that share no project and no user
// (requester or additional), each in sheet order. Rows of one set run one
// after another; sets run in parallel. Union-find over the keys.
func group(reqs []signup.Request) [][]signup.Request {
	parent := make([]int, len(reqs))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, q := range reqs {
		keys := []string{"p:" + strings.ToLower(q.Domain) + "\x00" + strings.ToLower(q.ProjectName), "u:" + strings.ToLower(q.Domain) + "\x00" + q.Email}
		for _, a := range q.AdditionalUsers {
			keys = append(keys, "u:"+strings.ToLower(q.Domain)+"\x00"+a)
		}
		for _, k := range keys {
			if j, ok := owner[k]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[k] = i
			}
		}
	}
	index := map[int]int{}
	var out [][]signup.Request
	for i, q := range reqs {
		root := find(i)
		g, ok := index[root]
		if !ok {
			g = len(out)
			index[root] = g
			out = append(out, nil)
		}
		out[g] = append(out[g], q)
	}
	return out
}
