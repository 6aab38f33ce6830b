"""The tape: grad modes, the backward walk, custom Functions and gradient checks."""
from nbdl.autograd.function import Function, FunctionCtx, once_differentiable
from nbdl.autograd.functional import backward, grad
from nbdl.autograd.grad_mode import (detect_anomaly, enable_grad, is_anomaly_enabled,
                                     is_grad_enabled, no_grad, set_grad_enabled)
from nbdl.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from nbdl.autograd.graph import Node
from nbdl.autograd.hessian import hessian, hvp

__all__ = ["Function", "FunctionCtx", "once_differentiable", "backward", "grad", "no_grad",
           "enable_grad", "set_grad_enabled", "is_grad_enabled", "detect_anomaly",
           "is_anomaly_enabled", "gradcheck", "gradgradcheck", "GradcheckError", "Node", "hvp", "hessian"]
