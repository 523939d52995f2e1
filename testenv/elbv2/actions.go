package elbv2

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

type xmlTarget struct {
	ID   string `xml:"Id"`
	Port int    `xml:"Port"`
}

type xmlHealth struct {
	State       string `xml:"State"`
	Reason      string `xml:"Reason,omitempty"`
	Description string `xml:"Description,omitempty"`
}

type xmlHealthDescription struct {
	Target          xmlTarget `xml:"Target"`
	HealthCheckPort string    `xml:"HealthCheckPort"`
	TargetHealth    xmlHealth `xml:"TargetHealth"`
}

type describeTargetHealthResult struct {
	XMLName      xml.Name               `xml:"DescribeTargetHealthResult"`
	Descriptions []xmlHealthDescription `xml:"TargetHealthDescriptions>member"`
}

func (s *Server) describeTargetHealth(form url.Values) (any, *apiError) {
	refs, e := targetRefs(form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(form.Get("TargetGroupArn"))
	if e != nil {
		return nil, e
	}
	if len(refs) == 0 {
		for r := range g.targets {
			refs = append(refs, r)
		}
	}
	res := describeTargetHealthResult{}
	for _, r := range refs {
		r = g.ref(r.id, r.port)
		h := g.health(r)
		hcPort := g.cfg.HealthCheck.Port
		if hcPort == "traffic-port" {
			hcPort = strconv.Itoa(r.port)
		}
		res.Descriptions = append(res.Descriptions, xmlHealthDescription{Target: xmlTarget{r.id, r.port},
			HealthCheckPort: hcPort, TargetHealth: xmlHealth(h)})
	}
	return res, nil
}

type registerTargetsResult struct {
	XMLName xml.Name `xml:"RegisterTargetsResult"`
}

type deregisterTargetsResult struct {
	XMLName xml.Name `xml:"DeregisterTargetsResult"`
}

func (s *Server) registerTargets(form url.Values) (any, *apiError) {
	refs, e := s.lockedRefs(form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(form.Get("TargetGroupArn"))
	if e != nil {
		return nil, e
	}
	if e := s.register(g, refs); e != nil {
		return nil, e
	}
	return registerTargetsResult{}, nil
}

func (s *Server) deregisterTargets(form url.Values) (any, *apiError) {
	refs, e := s.lockedRefs(form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(form.Get("TargetGroupArn"))
	if e != nil {
		return nil, e
	}
	if e := s.deregister(g, refs); e != nil {
		return nil, e
	}
	return deregisterTargetsResult{}, nil
}

// lockedRefs are the request's targets; RegisterTargets and DeregisterTargets need one.
func (s *Server) lockedRefs(form url.Values) ([]ref, *apiError) {
	refs, e := targetRefs(form)
	if e != nil {
		return nil, e
	}
	if len(refs) == 0 {
		return nil, &apiError{http.StatusBadRequest, "ValidationError", "1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null"}
	}
	return refs, nil
}

type xmlMatcher struct {
	HTTPCode string `xml:"HttpCode"`
}

type xmlTargetGroup struct {
	TargetGroupArn             string      `xml:"TargetGroupArn"`
	TargetGroupName            string      `xml:"TargetGroupName"`
	Protocol                   string      `xml:"Protocol"`
	Port                       int         `xml:"Port"`
	VpcID                      string      `xml:"VpcId"`
	HealthCheckProtocol        string      `xml:"HealthCheckProtocol"`
	HealthCheckPort            string      `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool        `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int         `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int         `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int         `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int         `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            string      `xml:"HealthCheckPath,omitempty"`
	Matcher                    *xmlMatcher `xml:"Matcher,omitempty"`
	TargetType                 string      `xml:"TargetType"`
	IPAddressType              string      `xml:"IpAddressType"`
}

type describeTargetGroupsResult struct {
	XMLName xml.Name         `xml:"DescribeTargetGroupsResult"`
	Groups  []xmlTargetGroup `xml:"TargetGroups>member"`
}

// seconds reports a duration in whole seconds, at least 1 (AWS's unit).
func seconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

func (s *Server) describeTargetGroups(form url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	arns := members(form, "TargetGroupArns")
	names := members(form, "Names")
	if len(arns) == 0 && len(names) == 0 {
		arns = s.order
	}
	for _, name := range names {
		found := false
		for _, arn := range s.order {
			if s.groups[arn].cfg.Name == name {
				arns, found = append(arns, arn), true
			}
		}
		if !found {
			return nil, &apiError{http.StatusBadRequest, "TargetGroupNotFound", fmt.Sprintf("Target groups '%s' not found", name)}
		}
	}
	res := describeTargetGroupsResult{}
	for _, arn := range arns {
		g, e := s.group(arn)
		if e != nil {
			return nil, e
		}
		hc := g.cfg.HealthCheck
		x := xmlTargetGroup{TargetGroupArn: arn, TargetGroupName: g.cfg.Name, Protocol: g.cfg.Protocol, Port: g.cfg.Port,
			VpcID: "vpc-0lbkit0local", HealthCheckProtocol: hc.Protocol, HealthCheckPort: hc.Port, HealthCheckEnabled: true,
			HealthCheckIntervalSeconds: seconds(hc.Interval), HealthCheckTimeoutSeconds: seconds(hc.Timeout),
			HealthyThresholdCount: hc.HealthyThreshold, UnhealthyThresholdCount: hc.UnhealthyThreshold,
			HealthCheckPath: hc.Path, TargetType: "ip", IPAddressType: "ipv4"}
		if hc.Matcher != "" {
			x.Matcher = &xmlMatcher{hc.Matcher}
		}
		res.Groups = append(res.Groups, x)
	}
	return res, nil
}

type xmlAttribute struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type describeTargetGroupAttributesResult struct {
	XMLName    xml.Name       `xml:"DescribeTargetGroupAttributesResult"`
	Attributes []xmlAttribute `xml:"Attributes>member"`
}

func (s *Server) describeTargetGroupAttributes(form url.Values) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.group(form.Get("TargetGroupArn"))
	if e != nil {
		return nil, e
	}
	res := describeTargetGroupAttributesResult{Attributes: []xmlAttribute{
		{"deregistration_delay.timeout_seconds", strconv.Itoa(g.cfg.DeregistrationDelaySeconds)},
		{"stickiness.enabled", "false"},
	}}
	if g.cfg.Protocol == "TCP" {
		res.Attributes = append(res.Attributes,
			xmlAttribute{"deregistration_delay.connection_termination.enabled", "false"},
			xmlAttribute{"preserve_client_ip.enabled", "true"},
			xmlAttribute{"proxy_protocol_v2.enabled", "false"},
			xmlAttribute{"target_health_state.unhealthy.connection_termination.enabled", "true"})
	}
	return res, nil
}
