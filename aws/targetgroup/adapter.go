// Package targetgroup lets lbadapters drive the nodes' targets in an AWS ELBv2 target group
// (Network or Application Load Balancer) through aws-sdk-go-v2.
package targetgroup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/xroad-lb/lbkit/lbadapters"
)

// API is the part of the ELBv2 client that the adapter calls.
type API interface {
	DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
	RegisterTargets(context.Context, *elbv2.RegisterTargetsInput, ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error)
	DeregisterTargets(context.Context, *elbv2.DeregisterTargetsInput, ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error)
	DescribeTargetGroups(context.Context, *elbv2.DescribeTargetGroupsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTargetGroupAttributes(context.Context, *elbv2.DescribeTargetGroupAttributesInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupAttributesOutput, error)
}

// Adapter is a lbadapters.Balancer for one ELBv2 target group.
type Adapter struct {
	api      API
	arn      string
	where    string // the endpoint or region, for messages
	timeout  time.Duration
	mu       sync.Mutex
	delay    time.Duration // the group's deregistration delay, once read
	delayErr bool
}

// New returns the adapter for a balancer of type aws. Credentials, region and endpoint come
// from the SDK's usual sources (environment, shared config and profile, SSO, instance role),
// overridden by the section's region, profile and endpoint; without any region, the target
// group ARN's region is used.
func New(ctx context.Context, cfg lbadapters.BalancerConfig) (*Adapter, error) {
	arn, err := lbadapters.ParseTargetGroupARN(cfg.TargetGroupARN)
	if err != nil {
		return nil, fmt.Errorf("target-group-arn: %w", err)
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = arn.Region
	}
	client := elbv2.NewFromConfig(awsCfg, func(o *elbv2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	where := "ELBv2 in " + awsCfg.Region
	if cfg.Endpoint != "" {
		where = "ELBv2 at " + cfg.Endpoint
	}
	return NewWithAPI(client, cfg, where), nil
}

// NewWithAPI returns an adapter that calls api (a client made elsewhere, or a test's
// recording stand-in); where names the endpoint in messages.
func NewWithAPI(api API, cfg lbadapters.BalancerConfig, where string) *Adapter {
	timeout := cfg.CallTimeout
	if timeout <= 0 {
		timeout = lbadapters.DefaultAWSCallTimeout
	}
	return &Adapter{api: api, arn: cfg.TargetGroupARN, where: where, timeout: timeout}
}

// target is the node's target: its ID (default its address) and port (0 = the group's).
func target(n lbadapters.Node) types.TargetDescription {
	id := n.TargetID
	if id == "" {
		id = n.Address
	}
	t := types.TargetDescription{Id: aws.String(id)}
	if n.TargetPort != 0 {
		t.Port = aws.Int32(int32(n.TargetPort))
	}
	return t
}

func targetText(n lbadapters.Node) string {
	t := target(n)
	if t.Port == nil {
		return *t.Id
	}
	return *t.Id + ":" + strconv.Itoa(int(*t.Port))
}

// State is the target's health from DescribeTargetHealth, naming the target, so a node that
// is not registered shows unused (Target.NotRegistered).
func (a *Adapter) State(ctx context.Context, n lbadapters.Node) (lbadapters.ServerState, error) {
	states, err := a.States(ctx, []lbadapters.Node{n})
	if err != nil {
		return lbadapters.ServerState{}, err
	}
	return states[0], nil
}

// States is every node's target health from one DescribeTargetHealth naming all the targets.
func (a *Adapter) States(ctx context.Context, nodes []lbadapters.Node) ([]lbadapters.ServerState, error) {
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	targets := make([]types.TargetDescription, len(nodes))
	for i, n := range nodes {
		targets[i] = target(n)
	}
	out, err := a.api.DescribeTargetHealth(cctx, &elbv2.DescribeTargetHealthInput{
		TargetGroupArn: aws.String(a.arn), Targets: targets})
	if err != nil {
		var n lbadapters.Node
		if len(nodes) == 1 {
			n = nodes[0]
		}
		return nil, a.explain(n, err)
	}
	states := make([]lbadapters.ServerState, len(nodes))
	for i, n := range nodes {
		d, ok := findTarget(out.TargetHealthDescriptions, targets[i])
		if !ok {
			return nil, fmt.Errorf("%s: DescribeTargetHealth did not return target %s of node %s", a.where, targetText(n), n.Name)
		}
		states[i] = FromHealth(*d.TargetHealth)
		if states[i].State == lbadapters.StateDrain {
			states[i].DrainLimit = a.drainLimit(ctx)
		}
	}
	return states, nil
}

// findTarget is the description of target t: same ID, and same port when t names one.
func findTarget(ds []types.TargetHealthDescription, t types.TargetDescription) (types.TargetHealthDescription, bool) {
	for _, d := range ds {
		if d.Target == nil || d.TargetHealth == nil || aws.ToString(d.Target.Id) != aws.ToString(t.Id) {
			continue
		}
		if t.Port != nil && aws.ToInt32(d.Target.Port) != *t.Port {
			continue
		}
		return d, true
	}
	return types.TargetHealthDescription{}, false
}

// FromHealth maps an ELBv2 TargetHealth to the orchestration's state: healthy is UP, initial
// and unhealthy are DOWN, draining is DRAIN, unused (not registered) is MAINT, which ends a
// drain. ELBv2 does not count connections per target.
func FromHealth(h types.TargetHealth) lbadapters.ServerState {
	s := lbadapters.ServerState{Status: string(h.State), Sessions: lbadapters.NotCounted,
		Reason: string(h.Reason), Description: aws.ToString(h.Description)}
	switch h.State {
	case types.TargetHealthStateEnumHealthy:
		s.State = lbadapters.StateUp
	case types.TargetHealthStateEnumInitial, types.TargetHealthStateEnumUnhealthy:
		s.State = lbadapters.StateDown
	case types.TargetHealthStateEnumDraining, types.TargetHealthStateEnumUnhealthyDraining:
		s.State = lbadapters.StateDrain
	case types.TargetHealthStateEnumUnused:
		s.State = lbadapters.StateMaint
	default:
		s.State = lbadapters.StateUnknown
	}
	return s
}

// Drain deregisters the target: ELBv2 stops sending it new connections and lets open ones
// run for the group's deregistration delay.
func (a *Adapter) Drain(ctx context.Context, n lbadapters.Node) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	_, err := a.api.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(a.arn), Targets: []types.TargetDescription{target(n)}})
	if err != nil {
		return a.explain(n, err)
	}
	return nil
}

// Enable registers the target; ELBv2 sends it traffic once its health checks pass.
func (a *Adapter) Enable(ctx context.Context, n lbadapters.Node) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	_, err := a.api.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(a.arn), Targets: []types.TargetDescription{target(n)}})
	if err != nil {
		return a.explain(n, err)
	}
	return nil
}

// drainLimit is the group's deregistration delay, read once; 0 when it cannot be read (the
// progress line then shows the elapsed time only).
func (a *Adapter) drainLimit(ctx context.Context) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.delay > 0 || a.delayErr {
		return a.delay
	}
	attrs, err := a.attributes(ctx)
	if err == nil {
		var secs int
		if secs, err = strconv.Atoi(attrs[AttrDeregistrationDelay]); err == nil {
			a.delay = time.Duration(secs) * time.Second
		}
	}
	a.delayErr = err != nil || a.delay == 0
	return a.delay
}

// AttrDeregistrationDelay is the target group attribute of the drain time.
const AttrDeregistrationDelay = "deregistration_delay.timeout_seconds"

func (a *Adapter) attributes(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	out, err := a.api.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(a.arn)})
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(out.Attributes))
	for _, at := range out.Attributes {
		m[aws.ToString(at.Key)] = aws.ToString(at.Value)
	}
	return m, nil
}

// Settings are a target group's settings that matter for draining and health, as
// `lbadapter status -o json` shows them.
type Settings struct {
	TargetGroupARN string      `json:"target_group_arn"`
	Name           string      `json:"name"`
	Protocol       string      `json:"protocol"`
	Port           int32       `json:"port"`
	TargetType     string      `json:"target_type"`
	HealthCheck    HealthCheck `json:"health_check"`
	// DeregistrationDelaySeconds is how long a deregistered target stays draining.
	DeregistrationDelaySeconds int               `json:"deregistration_delay_seconds"`
	Attributes                 map[string]string `json:"attributes"`
}

// HealthCheck is a target group's health check.
type HealthCheck struct {
	Enabled            bool   `json:"enabled"`
	Protocol           string `json:"protocol"`
	Port               string `json:"port"` // a number or "traffic-port"
	Path               string `json:"path,omitempty"`
	Matcher            string `json:"matcher,omitempty"` // HTTP codes, e.g. "200" or "200-399"
	IntervalSeconds    int32  `json:"interval_seconds"`
	TimeoutSeconds     int32  `json:"timeout_seconds"`
	HealthyThreshold   int32  `json:"healthy_threshold"`
	UnhealthyThreshold int32  `json:"unhealthy_threshold"`
}

// Describe reads the group's settings (DescribeTargetGroups, DescribeTargetGroupAttributes).
func (a *Adapter) Describe(ctx context.Context) (any, error) {
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	out, err := a.api.DescribeTargetGroups(cctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{a.arn}})
	if err != nil {
		return nil, a.explain(lbadapters.Node{}, err)
	}
	if len(out.TargetGroups) != 1 {
		return nil, fmt.Errorf("%s: DescribeTargetGroups returned %d groups for %s", a.where, len(out.TargetGroups), a.arn)
	}
	tg := out.TargetGroups[0]
	s := Settings{TargetGroupARN: aws.ToString(tg.TargetGroupArn), Name: aws.ToString(tg.TargetGroupName),
		Protocol: string(tg.Protocol), Port: aws.ToInt32(tg.Port), TargetType: string(tg.TargetType),
		HealthCheck: HealthCheck{Enabled: aws.ToBool(tg.HealthCheckEnabled), Protocol: string(tg.HealthCheckProtocol),
			Port: aws.ToString(tg.HealthCheckPort), Path: aws.ToString(tg.HealthCheckPath),
			IntervalSeconds: aws.ToInt32(tg.HealthCheckIntervalSeconds), TimeoutSeconds: aws.ToInt32(tg.HealthCheckTimeoutSeconds),
			HealthyThreshold: aws.ToInt32(tg.HealthyThresholdCount), UnhealthyThreshold: aws.ToInt32(tg.UnhealthyThresholdCount)}}
	if tg.Matcher != nil {
		s.HealthCheck.Matcher = aws.ToString(tg.Matcher.HttpCode)
	}
	if s.Attributes, err = a.attributes(ctx); err != nil {
		return nil, a.explain(lbadapters.Node{}, err)
	}
	s.DeregistrationDelaySeconds, _ = strconv.Atoi(s.Attributes[AttrDeregistrationDelay])
	return s, nil
}

var (
	_ lbadapters.Describer   = (*Adapter)(nil)
	_ lbadapters.BatchStater = (*Adapter)(nil)
)

// ErrNoCredentials is wrapped when the SDK found no usable credentials.
var ErrNoCredentials = errors.New("no usable AWS credentials")
