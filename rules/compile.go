package rules

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/proactivehq/proactive"
)

// Limits for rules, which may come from people other than the operator.
const (
	// MaxExprNodes bounds the size of one compiled expression.
	MaxExprNodes = 1000
	// MemoryBudget bounds what one evaluation may allocate, in expr's units.
	MemoryBudget = 100_000
	// DefaultForecastWindow is the trend window of forecast(metric, threshold).
	DefaultForecastWindow = 24 * time.Hour
)

// windowFuncs are the window functions of the rule language, each taking
// (metric, window).
var windowFuncs = map[string]bool{
	"avg": true, "min": true, "max": true, "sum": true, "count": true, "last": true,
	"delta": true, "rate": true, "slope": true, "stddev": true,
}

// Never is what forecast returns when the trend will not cross the
// threshold: longer than any window, so `forecast(m, t) < duration("3d")` is
// false.
const Never = time.Duration(math.MaxInt64)

// layout assigns slots to the metrics and windows the loaded rules use, so
// that evaluation indexes slices instead of hashing names. It only grows:
// slots stay valid across reloads, and with them the windows devices hold.
type layout struct {
	metrics     map[string]int
	metricNames []string
	windows     map[windowKey]int
	windowKeys  []windowKey
	// byMetric lists, per metric slot, the window slots fed by that metric.
	byMetric [][]int
	// eventWindow is the longest window a rule gives events(): how long a
	// device's event times are kept.
	eventWindow time.Duration
	// baselinedSlots are the window slots a model function reads, whose
	// devices' averages feed fleet baselines.
	baselinedSlots []int
}

type windowKey struct {
	metric int
	length time.Duration
}

func newLayout() *layout {
	return &layout{metrics: map[string]int{}, windows: map[windowKey]int{}}
}

func (l *layout) clone() *layout {
	c := &layout{
		metrics:        make(map[string]int, len(l.metrics)),
		metricNames:    append([]string(nil), l.metricNames...),
		windows:        make(map[windowKey]int, len(l.windows)),
		windowKeys:     append([]windowKey(nil), l.windowKeys...),
		byMetric:       make([][]int, len(l.byMetric)),
		eventWindow:    l.eventWindow,
		baselinedSlots: append([]int(nil), l.baselinedSlots...),
	}
	for k, v := range l.metrics {
		c.metrics[k] = v
	}
	for k, v := range l.windows {
		c.windows[k] = v
	}
	for i, ws := range l.byMetric {
		c.byMetric[i] = append([]int(nil), ws...)
	}
	return c
}

func (l *layout) metric(name string) int {
	if s, ok := l.metrics[name]; ok {
		return s
	}
	s := len(l.metricNames)
	l.metrics[name] = s
	l.metricNames = append(l.metricNames, name)
	l.byMetric = append(l.byMetric, nil)
	return s
}

func (l *layout) window(metric string, length time.Duration) int {
	k := windowKey{l.metric(metric), length}
	if s, ok := l.windows[k]; ok {
		return s
	}
	s := len(l.windowKeys)
	l.windows[k] = s
	l.windowKeys = append(l.windowKeys, k)
	l.byMetric[k.metric] = append(l.byMetric[k.metric], s)
	return s
}

// compiled is one compiled expression and what it needs.
type compiled struct {
	prog *vm.Program
	// sinceSeen is set when the expression calls since_seen(), which changes
	// without new data: such rules are also evaluated on a timer.
	sinceSeen bool
	metrics   []string
}

// exprError is a compile error at a position inside the expression.
type exprError struct {
	line, column int
	msg          string
}

func (e *exprError) Error() string { return e.msg }

// compileExpr compiles src with the rule functions bound to env: each call
// is a direct Go call on env, with no reflection per evaluation. Compiling
// the same source against the same layout gives the same slots, so the
// programs of different evaluators agree. want is the result type: "bool"
// for when, "duration" for predict.
func (l *layout) compileExpr(src, want string, env *evalEnv) (*compiled, error) {
	cfg := conf.CreateNew()
	opts := append(env.functions(), expr.Env(map[string]any{}), expr.MaxNodes(MaxExprNodes))
	if want == "bool" {
		opts = append(opts, expr.AsBool())
	}
	for _, o := range opts {
		o(cfg)
	}
	cfg.Check()
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, fromExprError(err)
	}
	rw := &rewriter{src: src, l: l, c: &compiled{}}
	rw.rewrite(&tree.Node)
	if rw.err != nil {
		return nil, rw.err
	}
	typ, err := checker.Check(tree, cfg)
	if err != nil {
		return nil, fromExprError(err)
	}
	if want == "duration" && typ != durationType {
		return nil, &exprError{1, 1, fmt.Sprintf("predict must give a duration (like forecast(metric, threshold)), not %v", typ)}
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		return nil, fromExprError(err)
	}
	prog, err := compiler.Compile(tree, cfg)
	if err != nil {
		return nil, fromExprError(err)
	}
	rw.c.prog = prog
	return rw.c, nil
}

var durationType = typeOf[time.Duration]()

func fromExprError(err error) error {
	if fe, ok := err.(*file.Error); ok {
		return &exprError{fe.Line, fe.Column + 1, fe.Message}
	}
	return &exprError{1, 1, err.Error()}
}

// rewriter turns the rule language into calls of the evaluator's functions
// by slot: a metric name becomes metric(slot), avg(metric, "1h") becomes
// avg(slot), and so on, so that windows are resolved once at load and not
// per evaluation.
type rewriter struct {
	src string
	l   *layout
	c   *compiled
	err error
	// lets are the names bound by `let`, which are not metrics.
	lets []string
}

func (r *rewriter) fail(n ast.Node, format string, args ...any) {
	if r.err == nil {
		line, col := 1, 1
		for i, c := range r.src {
			if i >= n.Location().From {
				break
			}
			if col++; c == '\n' {
				line, col = line+1, 1
			}
		}
		r.err = &exprError{line, col, fmt.Sprintf(format, args...)}
	}
}

func (r *rewriter) rewrite(node *ast.Node) {
	if r.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		r.identifier(node, n)
	case *ast.CallNode:
		r.call(node, n)
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "device" {
			prop, _ := n.Property.(*ast.StringNode)
			switch {
			case prop != nil && prop.Value == "model":
				ast.Patch(node, r.method("device_model"))
			case prop != nil && prop.Value == "age_days":
				ast.Patch(node, r.method("device_age_days"))
			default:
				r.fail(n, "device attributes are device.model and device.age_days")
			}
			return
		}
		r.rewrite(&n.Node)
		r.rewrite(&n.Property)
	case *ast.VariableDeclaratorNode:
		r.rewrite(&n.Value)
		r.lets = append(r.lets, n.Name)
		r.rewrite(&n.Expr)
		r.lets = r.lets[:len(r.lets)-1]
	case *ast.UnaryNode:
		r.rewrite(&n.Node)
	case *ast.BinaryNode:
		r.rewrite(&n.Left)
		r.rewrite(&n.Right)
	case *ast.ConditionalNode:
		r.rewrite(&n.Cond)
		r.rewrite(&n.Exp1)
		r.rewrite(&n.Exp2)
	case *ast.BuiltinNode:
		for i := range n.Arguments {
			r.rewrite(&n.Arguments[i])
		}
	case *ast.ArrayNode:
		for i := range n.Nodes {
			r.rewrite(&n.Nodes[i])
		}
	case *ast.ChainNode:
		r.rewrite(&n.Node)
	case *ast.PredicateNode:
		r.rewrite(&n.Node)
	case *ast.SliceNode:
		r.rewrite(&n.Node)
		if n.From != nil {
			r.rewrite(&n.From)
		}
		if n.To != nil {
			r.rewrite(&n.To)
		}
	case *ast.SequenceNode:
		for i := range n.Nodes {
			r.rewrite(&n.Nodes[i])
		}
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode,
		*ast.ConstantNode, *ast.PointerNode:
	case *ast.MapNode, *ast.PairNode, *ast.BytesNode:
		r.fail(*node, "maps and byte strings are not part of the rule language")
	default:
		r.fail(*node, "%T is not part of the rule language", n)
	}
}

func (r *rewriter) identifier(node *ast.Node, n *ast.IdentifierNode) {
	for _, v := range r.lets {
		if v == n.Value {
			return
		}
	}
	if n.Value == "device" {
		r.fail(n, "device is read as device.model or device.age_days")
		return
	}
	if !proactive.ValidMetricName(n.Value) {
		r.fail(n, "unknown name %q: metrics match [a-z][a-z0-9_]{0,63}", n.Value)
		return
	}
	slot := r.l.metric(n.Value)
	r.c.metrics = append(r.c.metrics, n.Value)
	ast.Patch(node, r.method("metric", &ast.IntegerNode{Value: slot}))
}

func (r *rewriter) method(name string, args ...ast.Node) *ast.CallNode {
	return &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args}
}

func (r *rewriter) call(node *ast.Node, n *ast.CallNode) {
	callee, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		r.fail(n, "only the rule functions can be called")
		return
	}
	name := callee.Value
	args := n.Arguments
	switch {
	case windowFuncs[name]:
		if len(args) != 2 {
			r.fail(n, "%s takes (metric, window), like %s(compressor_current, \"1h\"); got %d arguments", name, name, len(args))
			return
		}
		slot, ok := r.windowArgs(name, args[0], args[1])
		if ok {
			ast.Patch(node, r.method(name, &ast.IntegerNode{Value: slot}))
		}
	case name == "percentile":
		if len(args) != 3 {
			r.fail(n, "percentile takes (metric, window, p), like percentile(vibration, \"1h\", 95); got %d arguments", len(args))
			return
		}
		slot, ok := r.windowArgs(name, args[0], args[1])
		if !ok {
			return
		}
		p, ok := number(args[2])
		if !ok || p < 0 || p > 100 {
			r.fail(args[2], "percentile: p must be a number from 0 to 100")
			return
		}
		ast.Patch(node, r.method("percentile", &ast.IntegerNode{Value: slot}, &ast.FloatNode{Value: p}))
	case name == "forecast":
		if len(args) != 2 && len(args) != 3 {
			r.fail(n, "forecast takes (metric, threshold) or (metric, threshold, window), like forecast(compressor_current, 9.0); got %d arguments", len(args))
			return
		}
		window := ast.Node(&ast.StringNode{Value: proactive.FormatDuration(DefaultForecastWindow)})
		if len(args) == 3 {
			window = args[2]
		}
		slot, ok := r.windowArgs(name, args[0], window)
		if !ok {
			return
		}
		threshold := args[1]
		if v, ok := number(threshold); ok {
			threshold = &ast.FloatNode{Value: v}
		} else {
			r.rewrite(&n.Arguments[1])
			threshold = n.Arguments[1]
		}
		ast.Patch(node, r.method("forecast", &ast.IntegerNode{Value: slot}, threshold))
	case name == "duration":
		// Ours, not expr's: it takes the rule units d and w as well, and a
		// bad literal is refused at load instead of failing every evaluation.
		lit, ok := firstString(args)
		if !ok {
			r.fail(n, `duration takes one duration in quotes, like duration("3d")`)
			return
		}
		d, err := parseDuration(lit.Value)
		if err != nil {
			r.fail(lit, "duration(%q): %v", lit.Value, err)
			return
		}
		ast.Patch(node, &ast.ConstantNode{Value: d})
	case name == "model_avg" || name == "model_stddev" || name == "model_count":
		if len(args) != 2 {
			r.fail(n, "%s takes (metric, window), like %s(compressor_current, \"7d\"); got %d arguments", name, name, len(args))
			return
		}
		slot, ok := r.windowArgs(name, args[0], args[1])
		if !ok {
			return
		}
		if !slices.Contains(r.l.baselinedSlots, slot) {
			r.l.baselinedSlots = append(r.l.baselinedSlots, slot)
		}
		ast.Patch(node, r.method(name, &ast.IntegerNode{Value: slot}))
	case name == "events":
		if len(args) != 2 {
			r.fail(n, `events takes (code, window), like events("E101", "24h"); got %d arguments`, len(args))
			return
		}
		code, ok := r.codeArg(name, args[0])
		if !ok {
			return
		}
		d, ok := r.durationArg(name, args[1])
		if !ok {
			return
		}
		r.l.eventWindow = max(r.l.eventWindow, d)
		ast.Patch(node, r.method("events", &ast.StringNode{Value: code}, &ast.ConstantNode{Value: d}))
	case name == "since_event":
		if len(args) != 1 {
			r.fail(n, `since_event takes one event code, like since_event("E7"); got %d arguments`, len(args))
			return
		}
		code, ok := r.codeArg(name, args[0])
		if !ok {
			return
		}
		r.c.sinceSeen = true // it changes without new data
		ast.Patch(node, r.method("since_event", &ast.StringNode{Value: code}))
	case name == "since_maintenance":
		comp := ""
		switch len(args) {
		case 0:
		case 1:
			s, ok := args[0].(*ast.StringNode)
			if !ok || !proactive.ValidMetricName(s.Value) {
				r.fail(args[0], `since_maintenance: the component must be a name in quotes, like since_maintenance("fan")`)
				return
			}
			comp = s.Value
		default:
			r.fail(n, `since_maintenance takes no argument (the rule's component) or a component, like since_maintenance("fan"); got %d arguments`, len(args))
			return
		}
		r.c.sinceSeen = true
		ast.Patch(node, r.method("since_maintenance", &ast.StringNode{Value: comp}))
	case name == "sqrt" || name == "log" || name == "exp":
		if len(args) != 1 {
			r.fail(n, "%s takes one number; got %d arguments", name, len(args))
			return
		}
		r.rewrite(&n.Arguments[0])
	case name == "since_seen":
		if len(args) != 0 {
			r.fail(n, "since_seen takes no arguments")
			return
		}
		r.c.sinceSeen = true
		ast.Patch(node, r.method("since_seen"))
	default:
		r.fail(n, "unknown function %q (the rule functions are avg, min, max, sum, count, last, delta, rate, slope, stddev, percentile, forecast, since_seen, events, since_event, since_maintenance, model_avg, model_stddev, model_count, sqrt, log and exp, with expr's builtins such as abs and duration)", name)
	}
}

// windowArgs checks (metric, window) and returns the window's slot.
func (r *rewriter) windowArgs(fn string, metric, window ast.Node) (int, bool) {
	var name string
	switch m := metric.(type) {
	case *ast.IdentifierNode:
		name = m.Value
	case *ast.StringNode:
		name = m.Value
	default:
		r.fail(metric, "%s: the first argument must be a metric name", fn)
		return 0, false
	}
	if !proactive.ValidMetricName(name) {
		r.fail(metric, "%s: %q is not a metric name ([a-z][a-z0-9_]{0,63})", fn, name)
		return 0, false
	}
	w, ok := window.(*ast.StringNode)
	if !ok {
		r.fail(window, "%s: the window must be a duration in quotes, like \"1h\" or \"7d\"", fn)
		return 0, false
	}
	d, err := parseDuration(w.Value)
	if err != nil || d <= 0 {
		if err == nil {
			err = fmt.Errorf("must be longer than zero")
		}
		r.fail(window, "%s: window %q: %v", fn, w.Value, err)
		return 0, false
	}
	r.c.metrics = append(r.c.metrics, name)
	return r.l.window(name, d), true
}

// codeArg checks an event code pattern: a code in quotes, optionally
// ending in * to match every code it prefixes.
func (r *rewriter) codeArg(fn string, arg ast.Node) (string, bool) {
	s, ok := arg.(*ast.StringNode)
	if ok {
		p, _ := strings.CutSuffix(s.Value, "*")
		if p == "" && s.Value == "*" || proactive.ValidEventCode(p) {
			return s.Value, true
		}
	}
	r.fail(arg, `%s: the code must be an event code in quotes ([A-Za-z0-9_.:-]{1,64}), optionally ending in * for a prefix, like "E101" or "E1*"`, fn)
	return "", false
}

// durationArg checks a window in quotes.
func (r *rewriter) durationArg(fn string, arg ast.Node) (time.Duration, bool) {
	w, ok := arg.(*ast.StringNode)
	if !ok {
		r.fail(arg, "%s: the window must be a duration in quotes, like \"1h\" or \"7d\"", fn)
		return 0, false
	}
	d, err := parseDuration(w.Value)
	if err != nil || d <= 0 {
		if err == nil {
			err = fmt.Errorf("must be longer than zero")
		}
		r.fail(arg, "%s: window %q: %v", fn, w.Value, err)
		return 0, false
	}
	return d, true
}

func firstString(args []ast.Node) (*ast.StringNode, bool) {
	if len(args) != 1 {
		return nil, false
	}
	s, ok := args[0].(*ast.StringNode)
	return s, ok
}

func number(n ast.Node) (float64, bool) {
	switch v := n.(type) {
	case *ast.IntegerNode:
		return float64(v.Value), true
	case *ast.FloatNode:
		return v.Value, true
	case *ast.UnaryNode:
		if x, ok := number(v.Node); ok && v.Operator == "-" {
			return -x, true
		}
	}
	return 0, false
}

// describe is a short form of an expression for messages.
func describe(src string) string {
	src = strings.Join(strings.Fields(src), " ")
	if len(src) > 80 {
		return src[:80] + "…"
	}
	return src
}
