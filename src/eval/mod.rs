//! The evaluation harness: benchmark datasets (HumanEval(+), MBPP(+), BigCodeBench), prompt building,
//! code extraction from model output, execution on the sandbox and pass@k scoring.
