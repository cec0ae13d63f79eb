"""A server interceptor that counts gRPC calls by method and status code."""

from __future__ import annotations

import time

import grpc

from service.metrics import Metrics


class MetricsInterceptor(grpc.ServerInterceptor):
    """Records every call's status code and duration in Metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        # The method's own name: /gradpool.v1.Trainer/GetJob -> GetJob.
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(handler.stream_stream, method),
            handler.request_deserializer,
            handler.response_serializer,
        )

    def _record(self, method: str, context, started: float, failed: bool) -> None:
        code = context.code()
        if code is None:
            code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
        self.metrics.grpc_requests.labels(method, code.name).inc()
        self.metrics.grpc_latency.labels(method).observe(time.perf_counter() - started)

    def _unary(self, behaviour, method: str):
        def wrapped(request, context):
            started = time.perf_counter()
            failed = True
            try:
                reply = behaviour(request, context)
                failed = False
                return reply
            finally:
                self._record(method, context, started, failed)

        return wrapped

    def _streaming(self, behaviour, method: str):
        def wrapped(request, context):
            started = time.perf_counter()
            failed = True
            try:
                yield from behaviour(request, context)
                failed = False
            finally:
                if not context.is_active() and context.code() is None:
                    # The client went away before the stream ended.
                    context.set_code(grpc.StatusCode.CANCELLED)
                self._record(method, context, started, failed)

        return wrapped
