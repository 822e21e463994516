"""A TF1-style physics-informed network, as papers of that era wrote them, on optrun.

The only change from the ``tf.contrib`` original is the optimizer's import:
``tf.contrib.opt.ScipyOptimizerInterface`` -> ``optrun.ScipyOptimizerInterface``.

Problem: u''(x) = -pi^2 sin(pi x) on [-1, 1] with u(-1) = u(1) = 0; the exact
solution is u = sin(pi x). Placeholders and a session, a 9-layer tanh
network, second derivatives by ``tf.gradients``, an Adam phase, then
L-BFGS-B through ``minimize(sess, feed_dict=..., fetches=[loss], loss_callback=...)``.

Run: ``python examples/tf1_pinn.py`` (exits 1 if the fit misses its bound).
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import tensorflow as tf

import optrun

LAYERS = [1] + [20] * 8 + [1]  # 9 weight layers
#: The stated bounds: the run fails if either is missed.
LOSS_BOUND, ERROR_BOUND = 1e-4, 1e-3


class PhysicsInformedNN:
    def __init__(self, x_interior: np.ndarray, x_boundary: np.ndarray, seed: int = 1234) -> None:
        tf.compat.v1.set_random_seed(seed)
        self.x_interior, self.x_boundary = x_interior, x_boundary
        self.weights, self.biases = self.initialize_nn(LAYERS)
        self.x_f = tf.compat.v1.placeholder(tf.float32, shape=[None, 1])
        self.x_b = tf.compat.v1.placeholder(tf.float32, shape=[None, 1])
        u = self.net_u(self.x_f)
        u_x = tf.gradients(u, self.x_f)[0]
        u_xx = tf.gradients(u_x, self.x_f)[0]
        f = u_xx + np.pi**2 * tf.sin(np.pi * self.x_f)
        self.loss = tf.reduce_mean(tf.square(f)) + tf.reduce_mean(tf.square(self.net_u(self.x_b)))
        self.optimizer = optrun.ScipyOptimizerInterface(  # was: tf.contrib.opt.ScipyOptimizerInterface
            self.loss,
            method="L-BFGS-B",
            options={
                "maxiter": 2000,
                "maxfun": 2000,
                "maxcor": 50,
                "maxls": 50,
                "ftol": 1.0 * np.finfo(float).eps,
            },
        )
        self.optimizer_adam = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(self.loss)
        self.sess = tf.compat.v1.Session()
        self.sess.run(tf.compat.v1.global_variables_initializer())
        self.history: list[float] = []

    def initialize_nn(self, layers: list[int]) -> tuple[list, list]:
        weights, biases = [], []
        for fan_in, fan_out in itertools.pairwise(layers):
            stddev = np.sqrt(2.0 / (fan_in + fan_out))
            weights.append(tf.Variable(tf.compat.v1.truncated_normal([fan_in, fan_out], stddev=stddev)))
            biases.append(tf.Variable(tf.zeros([1, fan_out])))
        return weights, biases

    def net_u(self, x: tf.Tensor) -> tf.Tensor:
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = tf.tanh(tf.matmul(h, w) + b)
        return tf.matmul(h, self.weights[-1]) + self.biases[-1]

    def callback(self, loss: float) -> None:
        self.history.append(float(loss))

    def train(self, adam_steps: int) -> None:
        feed = {self.x_f: self.x_interior, self.x_b: self.x_boundary}
        for _ in range(adam_steps):
            self.sess.run(self.optimizer_adam, feed)
        self.optimizer.minimize(self.sess, feed_dict=feed, fetches=[self.loss], loss_callback=self.callback)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run(self.net_u(tf.constant(x)))


def main(adam_steps: int = 500) -> dict[str, float]:
    """Builds and fits the network in a graph of its own; returns the final loss and error."""
    x_interior = np.linspace(-1.0, 1.0, 201, dtype=np.float32)[:, None]
    x_boundary = np.array([[-1.0], [1.0]], np.float32)
    with tf.Graph().as_default():
        model = PhysicsInformedNN(x_interior, x_boundary)
        model.train(adam_steps)
        x = np.linspace(-1.0, 1.0, 101, dtype=np.float32)[:, None]
        error = float(np.max(np.abs(model.predict(x) - np.sin(np.pi * x))))
        loss = model.history[-1]
        model.sess.close()
    return {"loss": loss, "max_error": error, "evaluations": float(len(model.history))}


if __name__ == "__main__":
    tf.compat.v1.disable_v2_behavior()  # as the TF1-era scripts start
    result = main()
    print(f"L-BFGS-B evaluations: {result['evaluations']:.0f}")
    print(f"final loss {result['loss']:.3e} (bound {LOSS_BOUND:g})")
    print(f"max |u - sin(pi x)| {result['max_error']:.3e} (bound {ERROR_BOUND:g})")
    sys.exit(0 if result["loss"] < LOSS_BOUND and result["max_error"] < ERROR_BOUND else 1)
