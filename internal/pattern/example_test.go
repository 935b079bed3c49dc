package pattern_test

import (
	"fmt"

	"github.com/graylane/graylane/internal/pattern"
)

func ExampleCompile() {
	m := pattern.Compile("1.0; 2.*")
	for _, v := range []string{"1.0", "1.1", "2.3"} {
		fmt.Println(v, m.Match(v))
	}
	// Output:
	// 1.0 true
	// 1.1 false
	// 2.3 true
}
